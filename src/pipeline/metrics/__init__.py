"""Metrics: every function that turns predictions and gold labels into a score, in one package.

- :mod:`.glue`: GLUE classification and regression metrics (accuracy, F1, Matthews, Pearson, Spearman) by config;
- :mod:`.squad`: SQuAD v1.1/v2.0 exact match and F1, the official scripts' rules;
- :mod:`.text`: text overlap of answers (BLEU, ROUGE, METEOR);
- :mod:`.diagnostics`: per-class diagnostics of a classifier (confusion, precision/recall/F1, ROC/AUC) and the
  macro scores training logs per epoch;
- :mod:`.modules`: the same functions as local ``evaluate`` metric modules (``glue``, ``squad``, ``squad_v2``).

Why one home: the task types (:mod:`pipeline.tasks`), training (:mod:`pipeline.train`) and the evaluate stage
(:mod:`pipeline.evaluation`) all score, and a reader looking for how a number is computed should find one place,
not a metrics module per caller. The functions here are pure (arrays and strings in, floats out, no model),
so this package sits below all of those callers and imports no other pipeline package. Running a model to get
the predictions stays with the callers: :meth:`pipeline.tasks.base.Task.score` and
:func:`pipeline.evaluation.scoring.task_metrics`.
"""

"""Pretraining (the ``pretrain`` stage): masked LM for every family (:mod:`.mlm`, held-out perplexity also used
by ``merge``), and BERT's masked LM + next-sentence prediction (:mod:`.nsp`)."""

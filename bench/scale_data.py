"""Full-size generated data sets in the layouts of the real downloads, for the scale rehearsal (offline).

Writes, under the folder given on the command line, what the pipeline's local sources read
(:mod:`pipeline.data.local`, :mod:`pipeline.data.glue_tsv`, :mod:`pipeline.data.squad`):

- ``SST-2/train.tsv``, ``SST-2/dev.tsv``: GLUE's SST-2 (``sentence<TAB>label``), 67,349 / 872 rows,
  sentences of 10-50 words;
- ``MNLI/train.tsv``, ``MNLI/dev_matched.tsv``, ``MNLI/dev_mismatched.tsv``: GLUE's MNLI with all 12 (dev: 16)
  columns, parse trees included, 392,702 / 9,815 / 9,832 pairs, premises ~20 words (10-30) and hypotheses ~10
  (5-15), string labels;
- ``SQuAD/train-v1.1.json``, ``SQuAD/dev-v1.1.json``: SQuAD v1.1 (articles -> paragraphs -> qas), 87,599 /
  10,570 questions, five per paragraph, contexts of 120-150 words (3% of them 250-400 words, so some contexts
  need several 384-token windows, as in SQuAD), answers 1-4 word spans of their context (dev: three answers).

Words come from the synthetic generators' word list (:func:`pipeline.data.synthetic.words`), so the
project's ``synthetic`` WordPiece tokenizer keeps each word one token. The content is meaningless; sizes,
lengths and layouts are the real ones. Deterministic: the same ``--seed`` and ``--scale`` give the same bytes.

    python bench/scale_data.py /tmp/scale                  # full size (about 200 MB)
    python bench/scale_data.py /tmp/small --scale 0.001    # 0.1% of every split (at least 5 rows)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pipeline.data.synthetic import words as synthetic_words  # noqa: E402

SIZES = {
    "sst2": {"train": 67_349, "dev": 872},
    "mnli": {"train": 392_702, "dev_matched": 9_815, "dev_mismatched": 9_832},
    "squad": {"train": 87_599, "dev": 10_570},
}
MNLI_LABELS = ("entailment", "neutral", "contradiction")
MNLI_GENRES = {"train": ("fiction", "government", "slate", "telephone", "travel"),
               "dev_matched": ("fiction", "government", "slate", "telephone", "travel"),
               "dev_mismatched": ("facetoface", "letters", "nineeleven", "oup", "verbatim")}
QUESTIONS_PER_PARAGRAPH = 5
PARAGRAPHS_PER_ARTICLE = 45


class Words:
    """Sentences of random words from the word list, drawn from one seeded numpy generator."""

    def __init__(self, seed: int):
        vocab = [w for w in synthetic_words() if w.isalpha()]
        self.vocab = np.array(vocab, dtype=object)
        self.rng = np.random.default_rng(seed)

    def sentences(self, n: int, low: int, high: int) -> list[list[str]]:
        """``n`` word lists of ``low``-``high`` words (inclusive, uniform)."""
        lengths = self.rng.integers(low, high + 1, n)
        flat = self.vocab[self.rng.integers(0, len(self.vocab), int(lengths.sum()))].tolist()
        bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        return [flat[bounds[i]:bounds[i + 1]] for i in range(n)]


def sentence(words: list[str]) -> str:
    return " ".join(words).capitalize() + " ."


def write_tsv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(header) + "\n")
        fh.writelines("\t".join(row) + "\n" for row in rows)


def sst2(out: Path, gen: Words, sizes: dict[str, int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        labels = gen.rng.integers(0, 2, n).tolist()
        rows = ((" ".join(ws) + " ", str(label)) for ws, label in zip(gen.sentences(n, 10, 50), labels))
        write_tsv(out / f"{split}.tsv", ["sentence", "label"], rows)


def _parses(words: list[str]) -> tuple[str, str]:
    """A right-branching binary parse and a flat Penn-style parse of a sentence (column filler, never read)."""
    binary = "( " * (len(words) - 1) + " ".join(f"{w} )" if i else w for i, w in enumerate(words))
    return binary, "(ROOT (S " + " ".join(f"(NN {w})" for w in words) + " (. .)))"


def mnli(out: Path, gen: Words, sizes: dict[str, int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        votes = 1 if split == "train" else 5
        header = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                  "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
                  *[f"label{k}" for k in range(1, votes + 1)], "gold_label"]
        premises, hypotheses = gen.sentences(n, 10, 30), gen.sentences(n, 5, 15)
        labels, genres = gen.rng.integers(0, 3, n).tolist(), gen.rng.integers(0, 5, n).tolist()

        def rows():
            for i in range(n):
                p, h, label = premises[i], hypotheses[i], MNLI_LABELS[labels[i]]
                (pb, pp), (hb, hp) = _parses(p), _parses(h)
                yield [str(i), str(i // 3), f"{i // 3}{'nce'[i % 3]}", MNLI_GENRES[split][genres[i]], pb, hb, pp, hp,
                       sentence(p), sentence(h), *[label] * votes, label]

        write_tsv(out / f"{split}.tsv", header, rows())


def _paragraph(gen: Words, context_words: list[str], questions: list[list[str]], first_id: int, answers: int) -> dict:
    """One SQuAD paragraph: its context and questions, each answered by a 1-4 word span of the context."""
    context = sentence(context_words)
    starts = np.cumsum([0] + [len(w) + 1 for w in context_words]).tolist()  # char offset of every word
    qas = []
    for k, q in enumerate(questions):
        length = int(gen.rng.integers(1, 5))
        first = int(gen.rng.integers(0, len(context_words) - length))
        text = context[starts[first]:starts[first + length] - 1]
        spans = [(text, starts[first])] * answers
        if answers > 1:  # another annotator marked only the first word
            spans[-1] = (context[starts[first]:starts[first + 1] - 1], starts[first])
        qas.append({"id": f"{first_id + k:024x}", "question": " ".join(q).capitalize() + " ?",
                    "answers": [{"text": t, "answer_start": s} for t, s in spans]})
    return {"context": context, "qas": qas}


def squad(out: Path, gen: Words, sizes: dict[str, int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        n_par = -(-n // QUESTIONS_PER_PARAGRAPH)
        contexts = gen.sentences(n_par, 120, 150)
        long = gen.rng.random(n_par) < 0.03
        for i in np.flatnonzero(long).tolist():
            contexts[i] = gen.sentences(1, 250, 400)[0]
        questions = gen.sentences(n, 6, 14)
        base = 0 if split == "train" else 10**9
        articles: list[dict] = []
        for p in range(n_par):
            if p % PARAGRAPHS_PER_ARTICLE == 0:
                articles.append({"title": f"Article_{len(articles)}", "paragraphs": []})
            qs = questions[p * QUESTIONS_PER_PARAGRAPH:(p + 1) * QUESTIONS_PER_PARAGRAPH]
            par = _paragraph(gen, contexts[p], qs, base + p * QUESTIONS_PER_PARAGRAPH, 1 if split == "train" else 3)
            articles[-1]["paragraphs"].append(par)
        with open(out / f"{split}-v1.1.json", "w", encoding="utf-8") as fh:
            json.dump({"data": articles, "version": "1.1"}, fh)


WRITERS = {"sst2": ("SST-2", sst2), "mnli": ("MNLI", mnli), "squad": ("SQuAD", squad)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to write SST-2/, MNLI/ and SQuAD/ into")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the real split sizes (at least 5 rows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=sorted(WRITERS), action="append", help="data sets to write (default: all)")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 1:
        p.error(f"--scale must be in (0, 1], got {args.scale}")
    for k, name in enumerate(sorted(WRITERS)):
        if args.only and name not in args.only:
            continue
        folder, write = WRITERS[name]
        sizes = {split: max(5, round(n * args.scale)) for split, n in SIZES[name].items()}
        write(args.out / folder, Words(args.seed * 1000 + k), sizes)
        print(json.dumps({"data": name, "folder": str(args.out / folder), "rows": sizes}))


if __name__ == "__main__":
    main()

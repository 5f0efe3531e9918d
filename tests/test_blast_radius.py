"""A code change reruns only what it touches: ``dvc status`` after editing one source file.

In a temporary copy of the repository every stage output is replaced by a placeholder and the lock is
committed as it stands, so ``dvc status`` starts clean without running the pipeline. Then one file gets a
comment appended; the stages ``dvc status`` lists (those whose declared code changed) plus everything
downstream of them in the DAG are exactly what ``dvc repro`` would rerun.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden import rerun_after_editing
from placeholders import placeholder_copy

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(placeholder_repo, tmp_path) -> Path:
    """A copy of the session's placeholder repository (every output a placeholder, lock committed: ``dvc status``
    is clean), for this test alone."""
    return placeholder_copy(placeholder_repo, tmp_path / "repo")


TASKS = ("cls", "qa")


def branch(method: str) -> set[str]:
    """One pruning method's stages in both tasks: prune, distill and their evaluations."""
    return {s for t in TASKS for s in (f"prune@{t}-{method}", f"distill@{t}-{method}",
                                         f"evaluate@{t}-prune-{method}", f"evaluate@{t}-distill-{method}")}


# quantize.schemes x quantize.sources is [dynamic_int8] x [distill-heads]: one quantized variant per task,
# quantize-dynamic_int8-distill-heads
QUANTIZE = {f"{s}@{t}-dynamic_int8-distill-heads" for s in ("quantize", "evaluate-quantize") for t in TASKS}


def export(source: str) -> set[str]:
    """The ONNX export of one source variant in both tasks and the evaluations of its two graphs."""
    return {s for t in TASKS for s in (f"export@{t}-{source}", f"evaluate-export@{t}-onnx-{source}",
                                         f"evaluate-export@{t}-onnx_int8-{source}")}


def test_quantize_scheme_file_reruns_only_quantization(repo):
    assert rerun_after_editing(repo, "src/pipeline/quantize/dynamic_int8.py") == QUANTIZE | {"report"}


def test_a_scheme_nobody_uses_reruns_nothing(repo):
    assert rerun_after_editing(repo, "src/pipeline/quantize/fp8.py") == set()


def test_prune_method_file_reruns_only_its_branch(repo):
    assert rerun_after_editing(repo, "src/pipeline/prune/magnitude.py") == branch("magnitude") | {"report"}


def test_the_quantized_method_file_reruns_its_branch_and_quantization(repo):
    # quantize.sources (and an export source) is [distill-heads], so the quantized and exported models follow the
    # heads branch
    assert rerun_after_editing(repo, "src/pipeline/prune/heads.py") == (branch("heads") | QUANTIZE
                                                                          | export("distill-heads") | {"report"})


def test_export_code_reruns_only_the_exports(repo):
    expected = export("distill-heads") | {"report"}  # export.sources: [distill-heads]
    assert rerun_after_editing(repo, "src/pipeline/export/onnx_int8.py") == expected


def test_merge_method_file_reruns_merge_and_downstream(repo):
    rerun = rerun_after_editing(repo, "src/pipeline/merge/linear.py")
    assert "merge" in rerun and not rerun & {"tokenizer", "prepare@cls", "base", "pretrain@a", "pretrain@b"}
    assert rerun_after_editing(repo, "src/pipeline/merge/slerp.py") == set()  # merge.method is linear


def test_report_code_reruns_only_the_report(repo):
    assert rerun_after_editing(repo, "src/pipeline/report/card.py") == {"report"}


def test_training_loop_reruns_training_and_downstream_never_data(repo):
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        every = {stage.name for stage in dvc.index.stages}
    data = {"tokenizer", "base"} | {name for name in every if name.startswith("prepare@")}
    assert rerun_after_editing(repo, "src/pipeline/train/loop.py") == every - data


def test_compact_storage_reruns_no_training_from_scratch(repo):
    rerun = rerun_after_editing(repo, "src/pipeline/models/compact.py")
    assert {"prune@cls-magnitude", "evaluate@cls-finetune"} <= rerun
    assert not rerun & {"tokenizer", "prepare@cls", "base", "pretrain@a", "merge", "finetune@cls", "teacher@cls"}

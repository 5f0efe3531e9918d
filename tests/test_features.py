"""Batching and MLM masking."""

import torch

from pipeline.data.features import collate, mask_tokens


def test_collate_pads_to_longest():
    batch = collate([{"input_ids": [2, 5, 3], "attention_mask": [1, 1, 1], "labels": 1},
                     {"input_ids": [2, 3], "attention_mask": [1, 1], "labels": 0}], pad_id=0)
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0]


def test_mask_tokens_rate_and_specials():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 100, (64, 128), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    inputs, labels = mask_tokens(ids, special, mask_id=4, vocab_size=100, probability=0.15, generator=g)
    chosen = labels != -100
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    assert not chosen[:, 0].any()  # specials never masked
    assert torch.equal(labels[chosen], ids[chosen])
    masked_share = (inputs[chosen] == 4).float().mean().item()
    assert 0.75 < masked_share < 0.85
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_mask_tokens_is_reproducible():
    ids = torch.arange(200).view(2, 100) + 10
    special = torch.zeros_like(ids, dtype=torch.bool)
    a = mask_tokens(ids, special, 4, 300, 0.2, torch.Generator().manual_seed(7))
    b = mask_tokens(ids, special, 4, 300, 0.2, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

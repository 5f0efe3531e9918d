"""Masked-LM pretraining (the ``pretrain`` stage) and held-out perplexity (also used by ``merge``)."""

"""Data: sources (synthetic, hub, local files), schemas and the embedded tokenizer."""

"""CTC decoding for the speech models (pure torch/Python, no fairseq import): greedy decoding,
the prefix beam search, and the token n-gram LM it can fuse in."""

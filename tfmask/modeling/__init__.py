"""Model parts tfmask adds to TF Model Garden, and the pretrained weights they start from."""

"""Model parts tfmask adds to TF Model Garden."""

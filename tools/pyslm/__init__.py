"""pyslm: Python side of slm-gateway (GGUF writing, BERT reference model, WordPiece, training)."""

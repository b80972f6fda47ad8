"""`make test-real-llm`: verbcal on llama.cpp's llama-server, a real model and BBC News."""

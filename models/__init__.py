"""Shipped model directories (config.toml + weights.safetensors), installed as `basecall.models`."""

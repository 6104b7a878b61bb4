"""basecall: a Chiron-style nanopore basecaller in PyTorch."""

__version__ = "0.1.0"

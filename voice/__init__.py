"""Audio to text to ranked products: speech engines, catalogue grammars and text matching.
Never imports ``hub``."""

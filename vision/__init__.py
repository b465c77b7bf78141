"""Photo to ranked products: model loading, preprocessing, embedding and the gallery index.
Never imports ``hub``."""

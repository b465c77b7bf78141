"""Audio to text to ranked products: speech engines, catalogue grammars and text matching.
Never imports ``hub``.

The pieces, in the order a question flows through them: :mod:`voice.audio` (WAV in, resampled
PCM out), :mod:`voice.engines` (pocketsphinx or Vosk, behind :class:`voice.engine.SpeechEngine`),
:mod:`voice.grammar` (catalogue to checked grammar), :mod:`voice.search` (transcript to answer)
and :mod:`voice.matcher` (the fuzzy matcher shared with typed search).
"""

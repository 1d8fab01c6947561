"""What a codec needs at run time to load and run a trained model, apart from the networks (``model``) and the
entropy models (``latent_codecs``): the checkpoint (``checkpoint``) and its stored weight formats (``weights``,
``weight_plan``, ``compact``), the fixed-length coder (``fixed_length_coder``, with ``quantization`` and
``bitstream``) and the entropy coder (``entropy_coder``), the codec options (``options``) and the MAC counts
(``complexity``)."""

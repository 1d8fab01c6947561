"""What the latent codecs are built of: the learned densities (``densities``), the probability tables computed from
them (``tables``, ``probability_tables``), the range coder and its worker processes (``range_coding``,
``symbol_coding``, ``array_channel``) and the stream's header (``stream``)."""

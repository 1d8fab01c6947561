"""What the codecs need at run time to load a model: the stored weight formats (``weights``), the plan of which
weights the compact format quantizes (``weight_plan``) and the conversion of a checkpoint to a format (``compact``).

The checkpoint file, the bitstream, the codec options and the complexity counts will move here too: everything a
codec reads to run a trained model, apart from the networks themselves (``model``) and the trainer (``training``).
"""

"""AI-generation toolchains on a device: model files, generator installations and their
records, training sets, prompts, and the links between them and the pictures they made.

- ``models``: model files recognised and described from their bytes, never loaded or run
  (safetensors header, PyTorch zip/pickle read statically, GGUF, ONNX, diffusers folders),
  and the short model hashes generators print into pictures;
- ``installations``, ``records``, ``training``: generator installations known by their
  folder layout, their records (prompt history, styles, workflows, image databases, logs),
  and folders laid out for fine-tuning;
- ``analysis``: after a scan, what the evidence holds of all that, linked: each generated
  picture to the model files named in its metadata, each fine-tune to its training set, and
  the prompts of every source, searchable (docs/ai-toolchain.md).
"""

"""The model stages: the demo base model, LoRA training, ONNX export with a parity gate, serving."""

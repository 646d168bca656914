"""The built-in model families, one module each: config schema, label, example and
where the builder is. Torch-free, so reading a study or a store never imports torch."""

"""Porting LRN between frameworks: what a layer computes (:mod:`.semantics`), what a model
file holds (``inspect``), what a pair of tensors reveals (``explain``), and the drop-in
layers for frameworks whose own op cannot express it (``export``).

Nothing here touches the kernels except through :meth:`Semantics.apply`; model readers never
execute or unpickle what they read.
"""

"""Bundle custody store: the BundleStore interface, an in-memory reference and LMDB."""

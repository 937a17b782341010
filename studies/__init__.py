"""The founding study shipped as data, and the generator of its reconstructed codings."""

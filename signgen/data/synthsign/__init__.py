"""SynthSign: signgen's synthetic sign-language corpus (lexicon, grammar, signers,
motion, rendering, dataset). CLI: ``python -m signgen.data.synthsign``."""

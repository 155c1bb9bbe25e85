"""The C2SP specs' own example bytes (C2SP/C2SP at 5ba5ee8), copied from the spec texts, not
produced by our code: tlog-witness.md "add-checkpoint" and tlog-cosignature.md "Format" and
"Ed25519 signed message".  tests/test_cosignature.py and tests/test_witness.py hold our code to them."""

SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
LOG_LINES = (
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n",
    "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n",
)
# tlog-cosignature.md, "Format": the example cosignature line, and the checkpoint it cosigns.
SPEC_LINE = "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
SPEC_COSIGNED = SPEC_TEXT + "\n" + LOG_LINES[0] + SPEC_LINE
# tlog-cosignature.md, "Ed25519 signed message".
SPEC_MESSAGE = b"cosignature/v1\ntime 1679315147\n" + SPEC_TEXT.encode()
# tlog-witness.md, "add-checkpoint": the example request body.
SPEC_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n" + SPEC_TEXT + "\n" + "".join(LOG_LINES)
).encode()

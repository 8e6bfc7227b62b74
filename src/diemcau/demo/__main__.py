"""``python -m diemcau.demo sim|media ...``: a demo child process (`diemcau.demo.child`)."""

import sys

from diemcau.demo.child import child_main

sys.exit(child_main(sys.argv[1:]))

"""`python -m terminal.update` runs :mod:`terminal.field.update`.

The systemd units baked into flashed images run this path, and the update units run it with the
previous release's Python as well as the current one, so it must work before and after the code
moved to `terminal.field`. A package rather than a module `terminal/update.py`: so git sees the
move of the old module as a rename, and work based on the old layout follows it.
"""

import sys

from terminal.field.update import main

sys.exit(main())

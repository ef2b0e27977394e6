"""python -m trailkeep"""

from trailkeep.cli import main

main()

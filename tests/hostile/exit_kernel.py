# Ends its own process in the middle of the notebook.
import os
os._exit(0)

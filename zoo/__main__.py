import sys

from export.console import import_tensorflow_quietly

import_tensorflow_quietly()  # before anything imports TensorFlow: its start-up lines stay off the console

from zoo.cli import main  # noqa: E402

sys.exit(main())

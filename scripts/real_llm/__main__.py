import sys

from scripts.real_llm.run import main

sys.exit(main())

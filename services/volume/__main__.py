"""``python -m services.volume --backend NAME``."""

from services.volume.main import main

main()

from aupguard.cli import main

main()

from basecall.cli import main

main()

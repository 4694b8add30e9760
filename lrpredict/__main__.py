from lrpredict.cli import main

main()

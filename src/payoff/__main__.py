from payoff.cli import main

main()

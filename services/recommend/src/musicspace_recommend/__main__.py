from musicspace_shared.serve import main

main("recommend")

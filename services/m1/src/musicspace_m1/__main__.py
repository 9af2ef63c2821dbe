from musicspace_shared.serve import main

main("m1", 8001)

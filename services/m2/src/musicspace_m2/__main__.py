from musicspace_shared.serve import main

main("m2", 8002)

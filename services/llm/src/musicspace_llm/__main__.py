from musicspace_shared.serve import main

main("llm", 8004)

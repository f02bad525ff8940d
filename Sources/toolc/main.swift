print("toolc")

print("toold")

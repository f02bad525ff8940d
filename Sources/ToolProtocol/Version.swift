/// The version of toold and toolc (they ship together).
public enum TooldVersion {
    public static let current = "0.1.0"
}

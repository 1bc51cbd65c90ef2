// The load driver arrives with its own issue; see DESIGN.md.
/// Namespace of the load-test module until the driver lands.
public enum LoadTestModule {}

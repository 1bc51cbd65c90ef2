// The worker runtime arrives with the services-and-workers issue; see DESIGN.md.
/// Namespace of the worker module until the runtime lands.
public enum WorkerModule {}

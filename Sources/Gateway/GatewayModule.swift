// The services, router and worker pool arrive with the services issue; see DESIGN.md.
/// Namespace of the gateway module until its services land.
public enum GatewayModule {}

import ArgumentParser
import H2Transport

/// `switchyard certs`: generate a development CA with a server and a client certificate.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Generate development certificates (CA, localhost server, client) as PEM files.",
        discussion: """
            Writes ca.pem, ca-key.pem, server.pem, server-key.pem (SAN localhost, 127.0.0.1, ::1), \
            client.pem and client-key.pem (SAN URI spiffe://switchyard/dev-client) into --dir. \
            For development and tests only: the CA key sits next to the certificates.
            """
    )

    @Option(name: .long, help: "Directory for the PEM files (created if missing; existing files are replaced).")
    var dir = "Certs/dev"

    func run() throws {
        let files = try DevCertificates.generate(in: dir)
        print("wrote \(files.caCertificate), \(files.serverCertificate), \(files.clientCertificate) and their keys")
    }
}

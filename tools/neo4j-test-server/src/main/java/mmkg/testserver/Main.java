package mmkg.testserver;

import java.nio.file.Path;
import java.util.Map;

import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/** Neo4j Community in this process: settings from CONF_FILE, Bolt on 127.0.0.1:PORT, user neo4j/PASSWORD. */
public final class Main {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Main HOME_DIR CONF_FILE PORT PASSWORD");
            System.exit(2);
        }
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(Path.of(args[0]))
                .loadPropertiesFromFile(Path.of(args[1]))
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", Integer.parseInt(args[2])))
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown));
        dbms.database("system").executeTransactionally(
                "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", args[3]));
        System.out.println("neo4j-test-server: ready, Bolt on 127.0.0.1:" + args[2]);
        Thread.currentThread().join();
    }
}

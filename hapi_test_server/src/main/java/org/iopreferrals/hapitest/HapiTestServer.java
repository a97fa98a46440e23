package org.iopreferrals.hapitest;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;

/**
 * Entry point: {@code java -jar hapi-test-server.jar --server.port=PORT [--hapi.db.path=DIR]}.
 * Without a path the database is in memory; with one, an H2 file database there survives restarts.
 */
@SpringBootApplication(exclude = {ElasticsearchRestClientAutoConfiguration.class, QuartzAutoConfiguration.class})
public class HapiTestServer {

	public static void main(String[] args) {
		List<String> argv = new ArrayList<>(List.of(args));
		for (String arg : args) {
			if (arg.startsWith("--hapi.db.path=")) {
				Path dir = Path.of(arg.substring("--hapi.db.path=".length())).toAbsolutePath();
				argv.add("--hapi.db.url=jdbc:h2:file:" + dir.resolve("hapi") + ";AUTO_SERVER=FALSE");
			}
		}
		SpringApplication.run(HapiTestServer.class, argv.toArray(String[]::new));
	}
}

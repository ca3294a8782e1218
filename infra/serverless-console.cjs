/**
 * A local osls plugin (serverless.yml's `plugins`): builds the web console (console/build.ts, run
 * with tsx) into console/dist before the functions are packaged or deployed, so that the api
 * function's zip carries it (its `package.patterns`). console/dist is git-ignored: nothing built is
 * committed, and a package never holds a stale console.
 */
const { execFileSync } = require("node:child_process");
const { join } = require("node:path");

class BuildConsole {
  constructor(serverless) {
    const serviceDir = serverless.serviceDir ?? process.cwd();
    const build = () => {
      execFileSync(process.execPath, ["--import", "tsx", join(serviceDir, "console", "build.ts")], {
        cwd: serviceDir,
        stdio: ["ignore", "inherit", "inherit"],
      });
    };
    this.hooks = {
      "before:package:createDeploymentArtifacts": build,
      "before:deploy:function:packageFunction": build,
    };
  }
}

module.exports = BuildConsole;

// GitHub's own JavaScript client (@octokit/rest) drives Berth's Packages and webhooks APIs,
// through octokit's methods only (no raw requests), so a pass proves GitHub's client works
// against Berth. Run by crates/berth/tests/e2e/octokit.rs, which seeds the server first.
//
// Env: BERTH_URL (the server's base URL), BERTH_TOKEN (a token of BERTH_USER, owner of
// BERTH_ORG), BERTH_PACKAGE (an org package holding BERTH_VERSIONS versions, more than 100),
// BERTH_SPARE (a second org package, deleted and restored here), BERTH_USER_PACKAGE (a
// package of BERTH_USER). Prints one `ok <step>` line per step; on the first failure prints
// `FAILED <step>: <why>` and exits 1.

import { createServer } from "node:http";
import { Octokit } from "@octokit/rest";
import { verify } from "@octokit/webhooks-methods";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const org = env("BERTH_ORG");
const user = env("BERTH_USER");
const packageName = env("BERTH_PACKAGE");
const spare = env("BERTH_SPARE");
const userPackage = env("BERTH_USER_PACKAGE");
const expectedVersions = Number(env("BERTH_VERSIONS"));
const octokit = new Octokit({
  auth: env("BERTH_TOKEN"),
  baseUrl: `${env("BERTH_URL")}/api/v3`,
  userAgent: "berth-octokit-test",
});
const container = { package_type: "container" };

let step = "start";
const check = (condition, why) => {
  if (!condition) throw new Error(why);
};
const ok = (detail = "") => console.log(`ok ${step}${detail ? ` ${detail}` : ""}`);
/** The status of the RequestError `promise` rejects with (it must reject). */
const refusal = async (promise) => {
  try {
    await promise;
  } catch (error) {
    if (error.status) return error.status;
    throw error;
  }
  throw new Error("expected the request to be refused, it succeeded");
};

/** The active versions of the package, every page. */
const allVersions = (state = "active") =>
  octokit.paginate(octokit.rest.packages.getAllPackageVersionsForPackageOwnedByOrg, {
    ...container,
    org,
    package_name: packageName,
    per_page: 100,
    state,
  });

/** A receiver on 127.0.0.1 keeping each delivery's headers and raw body. */
const startReceiver = () =>
  new Promise((resolve) => {
    const deliveries = [];
    const waiters = [];
    const server = createServer((request, response) => {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        deliveries.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
        response.writeHead(200).end("thanks");
        waiters.splice(0).forEach((wake) => wake());
      });
    });
    /** Waits until `count` deliveries arrived (10 s at most). */
    const received = async (count) => {
      const deadline = Date.now() + 10_000;
      while (deliveries.length < count) {
        check(Date.now() < deadline, `only ${deliveries.length} of ${count} deliveries arrived`);
        await new Promise((wake) => {
          waiters.push(wake);
          setTimeout(wake, 100);
        });
      }
      return deliveries.slice(0, count);
    };
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${server.address().port}/hook`, received, server }),
    );
  });

/** Checks a delivery's signature with GitHub's verifier; the parsed payload. */
const verified = async (delivery, secret, event) => {
  const signature = delivery.headers["x-hub-signature-256"];
  check(signature?.startsWith("sha256="), `no x-hub-signature-256: ${JSON.stringify(delivery.headers)}`);
  check(await verify(secret, delivery.body, signature), "the signature does not verify with the secret");
  check(!(await verify(`${secret}!`, delivery.body, signature)), "the signature verifies with another secret");
  check(delivery.headers["x-github-event"] === event, `event ${delivery.headers["x-github-event"]}, not ${event}`);
  return JSON.parse(delivery.body);
};

try {
  step = "paginate-versions";
  const versions = await allVersions();
  check(
    versions.length === expectedVersions,
    `paginate gave ${versions.length} versions, pushed ${expectedVersions}`,
  );
  check(new Set(versions.map((v) => v.id)).size === expectedVersions, "a version came twice");
  ok(`${versions.length}`);

  step = "iterate-pages";
  let pages = 0;
  for await (const page of octokit.paginate.iterator(
    octokit.rest.packages.getAllPackageVersionsForPackageOwnedByOrg,
    { ...container, org, package_name: packageName, per_page: 100 },
  )) {
    check(page.status === 200, `page status ${page.status}`);
    pages += 1;
  }
  check(pages === Math.ceil(expectedVersions / 100), `${pages} pages`);
  ok(`${pages}`);

  step = "get-package";
  const { data: pkg } = await octokit.rest.packages.getPackageForOrganization({
    ...container,
    org,
    package_name: packageName,
  });
  check(pkg.name === packageName && pkg.package_type === "container", JSON.stringify(pkg));
  check(pkg.owner.login === org && pkg.version_count === expectedVersions, JSON.stringify(pkg));
  ok();

  step = "list-org-packages";
  const orgPackages = await octokit.paginate(octokit.rest.packages.listPackagesForOrganization, {
    ...container,
    org,
  });
  const orgNames = orgPackages.map((p) => p.name).sort();
  check(
    JSON.stringify(orgNames) === JSON.stringify([packageName, spare].sort()),
    `org packages: ${orgNames}`,
  );
  ok();

  step = "list-user-packages";
  const { data: userPackages } = await octokit.rest.packages.listPackagesForUser({
    ...container,
    username: user,
  });
  check(
    JSON.stringify(userPackages.map((p) => p.name)) === JSON.stringify([userPackage]),
    `user packages: ${userPackages.map((p) => p.name)}`,
  );
  const { data: mine } = await octokit.rest.packages.listPackagesForAuthenticatedUser(container);
  check(mine.some((p) => p.name === userPackage), `my packages: ${mine.map((p) => p.name)}`);
  ok();

  step = "delete-restore-version";
  const victim = versions[versions.length - 1];
  const version = { ...container, org, package_name: packageName, package_version_id: victim.id };
  const { data: got } = await octokit.rest.packages.getPackageVersionForOrganization(version);
  check(got.name === victim.name, `got ${got.name}, listed ${victim.name}`);
  const deleted = await octokit.rest.packages.deletePackageVersionForOrg(version);
  check(deleted.status === 204, `delete: ${deleted.status}`);
  check((await allVersions()).length === expectedVersions - 1, "the deleted version is still listed");
  const gone = await allVersions("deleted");
  check(gone.length === 1 && gone[0].id === victim.id, `deleted versions: ${gone.map((v) => v.id)}`);
  const restored = await octokit.rest.packages.restorePackageVersionForOrg(version);
  check(restored.status === 204, `restore: ${restored.status}`);
  check((await allVersions()).length === expectedVersions, "the restored version is not listed");
  ok();

  step = "delete-restore-package";
  const sparePackage = { ...container, org, package_name: spare };
  const removed = await octokit.rest.packages.deletePackageForOrg(sparePackage);
  check(removed.status === 204, `delete: ${removed.status}`);
  const missing = await refusal(octokit.rest.packages.getPackageForOrganization(sparePackage));
  check(missing === 404, `get after delete: ${missing}`);
  const back = await octokit.rest.packages.restorePackageForOrg(sparePackage);
  check(back.status === 204, `restore: ${back.status}`);
  const { data: again } = await octokit.rest.packages.getPackageForOrganization(sparePackage);
  check(again.name === spare, JSON.stringify(again));
  ok();

  step = "create-hook";
  const receiver = await startReceiver();
  const secret = "It's a Secret to Everybody";
  const { data: hook, status } = await octokit.rest.orgs.createWebhook({
    org,
    name: "web",
    config: { url: receiver.url, content_type: "json", secret },
    events: ["package"],
    active: true,
  });
  check(status === 201 && hook.id && hook.config.url === receiver.url, JSON.stringify(hook));
  check(hook.config.secret !== secret, "the secret is shown back");
  const hookId = { org, hook_id: hook.id };
  ok();

  step = "list-get-hook";
  const hooks = await octokit.paginate(octokit.rest.orgs.listWebhooks, { org });
  check(hooks.length === 1 && hooks[0].id === hook.id, `hooks: ${JSON.stringify(hooks)}`);
  const { data: shown } = await octokit.rest.orgs.getWebhook(hookId);
  check(shown.id === hook.id && JSON.stringify(shown.events) === '["package"]', JSON.stringify(shown));
  ok();

  step = "ping-verify";
  // GitHub pings a hook when it is created; pingWebhook sends another.
  const pinged = await octokit.rest.orgs.pingWebhook(hookId);
  check(pinged.status === 204, `ping: ${pinged.status}`);
  const pings = await receiver.received(2);
  for (const delivery of pings) {
    const payload = await verified(delivery, secret, "ping");
    check(payload.hook_id === hook.id && payload.hook.id === hook.id, delivery.body);
  }
  ok(`${pings.length}`);

  step = "list-deliveries";
  const deadline = Date.now() + 10_000;
  let deliveries = [];
  while (deliveries.filter((d) => d.status_code === 200).length < 2) {
    check(Date.now() < deadline, `deliveries: ${JSON.stringify(deliveries)}`);
    deliveries = await octokit.paginate(octokit.rest.orgs.listWebhookDeliveries, hookId);
  }
  check(deliveries.every((d) => d.event === "ping"), JSON.stringify(deliveries));
  const { data: delivery } = await octokit.rest.orgs.getWebhookDelivery({
    ...hookId,
    delivery_id: deliveries[0].id,
  });
  check(delivery.id === deliveries[0].id && delivery.status_code === 200 && delivery.event === "ping", JSON.stringify(delivery));
  ok(`${deliveries.length}`);

  step = "update-hook";
  const { data: updated } = await octokit.rest.orgs.updateWebhook({
    ...hookId,
    active: false,
    events: ["package", "registry_package"],
  });
  check(updated.active === false, JSON.stringify(updated));
  check(JSON.stringify([...updated.events].sort()) === '["package","registry_package"]', JSON.stringify(updated));
  check(updated.config.url === receiver.url && updated.config.content_type === "json", JSON.stringify(updated));
  ok();

  step = "hook-config";
  const { data: config } = await octokit.rest.orgs.getWebhookConfigForOrg(hookId);
  check(config.url === receiver.url && config.content_type === "json", JSON.stringify(config));
  check(config.secret === "********", `the secret is shown masked: ${JSON.stringify(config)}`);
  const { data: changed } = await octokit.rest.orgs.updateWebhookConfigForOrg({
    ...hookId,
    content_type: "form",
  });
  check(changed.content_type === "form" && changed.url === receiver.url, JSON.stringify(changed));
  const { data: reread } = await octokit.rest.orgs.getWebhookConfigForOrg(hookId);
  check(reread.content_type === "form" && reread.secret === "********", JSON.stringify(reread));
  ok();

  step = "delete-hook";
  const dropped = await octokit.rest.orgs.deleteWebhook(hookId);
  check(dropped.status === 204, `delete: ${dropped.status}`);
  const after = await refusal(octokit.rest.orgs.getWebhook(hookId));
  check(after === 404, `get after delete: ${after}`);
  ok();

  receiver.server.close();
  console.log("done");
} catch (error) {
  const detail = error.response ? ` (${error.status} ${JSON.stringify(error.response.data)})` : "";
  console.log(`FAILED ${step}: ${error.message}${detail}`);
  process.exit(1);
}

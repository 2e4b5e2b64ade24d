// The platform from a TypeScript program (docs/packages.md).
//
// Before you run it:
// - Node 20 and the Pulumi CLI (3.274.0 is the version this repository builds and tests);
// - `az login` as yourself: the deployer gets its cluster and Redis roles as a User (the
//   default deployerPrincipalType; set ServicePrincipal only when a service principal runs it);
// - the app images where the cluster can pull them (README, "Deploy on Azure": build,
//   push to the ACR this program creates, then set workerImage, producerImage, cacheApiImage);
// - it creates billed Azure resources (an AKS cluster, Azure Managed Redis Balanced_B0, an ACR):
//   `pulumi destroy` removes them.
//
//   pulumi package add ../../provider   # generates sdks/redis-keda-platform, adds it to package.json
//   npm install && pulumi up
//
// @pulumi/pulumi is 3.270.0: the npm registry serves no 3.272.0 (the Python SDK's pin), and
// the two speak the same engine protocol.
// Every property is a stack config key of redis-keda-platform (same name, type, default);
// tests/infra/test_examples.py checks each one against the package schema.
import * as pulumi from "@pulumi/pulumi";
import * as rkp from "@pulumi/redis-keda-platform";

// The API server answers only the CIDRs you give (yours and CI's public egress):
//   pulumi config set apiServerAuthorizedIpRanges "$(curl -s https://ifconfig.me)/32"
const config = new pulumi.Config();

const platform = new rkp.Platform("platform", {
    target: rkp.Target.Aks,
    location: "westeurope",
    apiServerAuthorizedIpRanges: config.require("apiServerAuthorizedIpRanges"),
    availabilityZones: "1,2,3",
    azureRedis: rkp.AzureRedis.Managed,
    redisManagedSku: "Balanced_B0",
    redisPublicNetworkAccess: rkp.RedisPublicNetworkAccess.Disabled,
    createAcr: true,
    workerMode: "deployment",
    workerMaxReplicas: 20,
    listLength: 5,
    workSecondsMax: 10,
    cacheApiReadPath: rkp.CacheApiReadPath.Central,
    monitoring: true,
});

export const cacheApiService = platform.cacheApiService;
export const redisHost = platform.redisHost;
export const redisPort = platform.redisPort;
export const kubeconfig = pulumi.secret(platform.kubeconfig);

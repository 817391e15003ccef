# Serves the APK's assets/ at https://appassets.androidplatform.net/ (a secure origin, so
# ES modules, fetch and the camera work as on a web server; file:// allows none of them):
#
#   class AssetClient extends WebViewClient {
#     private final AssetManager assets;
#     AssetClient(AssetManager assets) { this.assets = assets; }
#     public WebResourceResponse shouldInterceptRequest(WebView view, WebResourceRequest r) {
#       Uri url = r.getUrl();
#       if (!"appassets.androidplatform.net".equals(url.getHost())) return null;
#       String path = url.getPath().substring(1);
#       try {
#         return new WebResourceResponse(mimeType(path), null, assets.open(path));
#       } catch (IOException e) {
#         return null;
#       }
#     }
#     static String mimeType(String path) {   // .html .js .css .json .wasm, else binary
#       ...
#     }
#   }
.class public Lorg/tfsym3d/demo/AssetClient;
.super Landroid/webkit/WebViewClient;

.field private final assets:Landroid/content/res/AssetManager;

.method public constructor <init>(Landroid/content/res/AssetManager;)V
    .registers 2
    invoke-direct {p0}, Landroid/webkit/WebViewClient;-><init>()V
    iput-object p1, p0, Lorg/tfsym3d/demo/AssetClient;->assets:Landroid/content/res/AssetManager;
    return-void
.end method

.method public shouldInterceptRequest(Landroid/webkit/WebView;Landroid/webkit/WebResourceRequest;)Landroid/webkit/WebResourceResponse;
    .registers 9
    invoke-interface {p2}, Landroid/webkit/WebResourceRequest;->getUrl()Landroid/net/Uri;
    move-result-object v0
    const-string v1, "appassets.androidplatform.net"
    invoke-virtual {v0}, Landroid/net/Uri;->getHost()Ljava/lang/String;
    move-result-object v2
    invoke-virtual {v1, v2}, Ljava/lang/String;->equals(Ljava/lang/Object;)Z
    move-result v1
    if-eqz v1, :outside
    invoke-virtual {v0}, Landroid/net/Uri;->getPath()Ljava/lang/String;
    move-result-object v1
    const/4 v2, 0x1
    invoke-virtual {v1, v2}, Ljava/lang/String;->substring(I)Ljava/lang/String;
    move-result-object v1
    :try_start
    iget-object v2, p0, Lorg/tfsym3d/demo/AssetClient;->assets:Landroid/content/res/AssetManager;
    invoke-virtual {v2, v1}, Landroid/content/res/AssetManager;->open(Ljava/lang/String;)Ljava/io/InputStream;
    move-result-object v2
    :try_end
    .catch Ljava/io/IOException; {:try_start .. :try_end} :outside
    invoke-static {v1}, Lorg/tfsym3d/demo/AssetClient;->mimeType(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v3
    new-instance v4, Landroid/webkit/WebResourceResponse;
    const/4 v5, 0x0
    invoke-direct {v4, v3, v5, v2}, Landroid/webkit/WebResourceResponse;-><init>(Ljava/lang/String;Ljava/lang/String;Ljava/io/InputStream;)V
    return-object v4
    :outside
    const/4 v0, 0x0
    return-object v0
.end method

.method static mimeType(Ljava/lang/String;)Ljava/lang/String;
    .registers 3
    const-string v0, ".html"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_html
    const-string v0, "text/html"
    return-object v0
    :not_html
    const-string v0, ".js"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_js
    const-string v0, "text/javascript"
    return-object v0
    :not_js
    const-string v0, ".css"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_css
    const-string v0, "text/css"
    return-object v0
    :not_css
    const-string v0, ".json"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_json
    const-string v0, "application/json"
    return-object v0
    :not_json
    const-string v0, ".wasm"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :binary
    const-string v0, "application/wasm"
    return-object v0
    :binary
    const-string v0, "application/octet-stream"
    return-object v0
.end method
